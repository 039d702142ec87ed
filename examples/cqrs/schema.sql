-- The write side of the CQRS example: the `orders` database's tables. The run script and the
-- example's test (tests/examples/) both create them from this file.
CREATE TABLE customers (
  id int PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL
);
CREATE TABLE orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers (id),
  status text NOT NULL DEFAULT 'new',
  created_at timestamptz NOT NULL DEFAULT now()
);
-- The notifier needs the old status to tell "became shipped" from "was shipped already":
-- with FULL, updates carry the whole old row in the event's `before`.
ALTER TABLE orders REPLICA IDENTITY FULL;
CREATE TABLE order_lines (
  order_id int NOT NULL REFERENCES orders (id),
  line_no int NOT NULL,
  sku text NOT NULL,
  qty int NOT NULL,
  unit_price numeric(10,2) NOT NULL,
  PRIMARY KEY (order_id, line_no)
);
