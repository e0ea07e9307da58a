ALTER TABLE items ADD COLUMN owner TEXT;
CREATE INDEX items_owner ON items (owner);
