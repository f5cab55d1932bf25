DROP TABLE IF EXISTS product;

CREATE TABLE product (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sku TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  category TEXT,                 -- the shop's own category, e.g. "Three-seat sofa"
  class TEXT,                    -- the model class, e.g. "couch" (NULL when unmapped)
  image_path TEXT NOT NULL,      -- absolute path of the product photo
  image_sha256 TEXT NOT NULL,    -- cut-out cache key (with the model hash)
  width_px INTEGER,
  height_px INTEGER,
  dimensions_text TEXT,
  width_cm REAL,
  depth_cm REAL,
  height_cm REAL,
  diameter_cm REAL,
  source TEXT,
  source_url TEXT
);

CREATE INDEX product_class ON product (class);
CREATE INDEX product_name ON product (name);
