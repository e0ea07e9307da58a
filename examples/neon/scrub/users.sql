-- Replace personal data copied from production with stand-ins: staging is less protected.
UPDATE users
SET email = 'user' || id || '@example.invalid',
    name = 'User ' || id,
    phone = NULL;
DELETE FROM sessions;
