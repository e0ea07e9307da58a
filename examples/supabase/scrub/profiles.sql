-- Personal data copied from production never reaches the branch's readers.
UPDATE profiles
SET full_name = 'Guest ' || left(id::text, 8),
    avatar_url = NULL;
UPDATE auth.users
SET email = id || '@example.invalid',
    phone = NULL,
    raw_user_meta_data = '{}'::jsonb;
