-- The example's workload on the write database, one transaction per business action. The
-- test (tests/examples/) expects exactly orders 101 and 103 to be notified as shipped.

-- Three customers sign up.
INSERT INTO customers VALUES
  (1, 'Ada Lovelace', 'ada@example.com'),
  (2, 'Grace Hopper', 'grace@example.com'),
  (3, 'Alan Turing', 'alan@example.com');

-- Four orders are placed, each with its lines.
BEGIN;
INSERT INTO orders (id, customer_id) VALUES (101, 1);
INSERT INTO order_lines VALUES (101, 1, 'BOOK-1', 2, 12.50), (101, 2, 'PEN-3', 10, 1.20);
COMMIT;
BEGIN;
INSERT INTO orders (id, customer_id) VALUES (102, 1);
INSERT INTO order_lines VALUES (102, 1, 'LAMP-7', 1, 49.90);
COMMIT;
BEGIN;
INSERT INTO orders (id, customer_id) VALUES (103, 2);
INSERT INTO order_lines VALUES (103, 1, 'BOOK-1', 1, 12.50), (103, 2, 'MUG-2', 4, 8.00);
COMMIT;
BEGIN;
INSERT INTO orders (id, customer_id) VALUES (104, 3);
INSERT INTO order_lines VALUES (104, 1, 'DESK-9', 1, 249.00);
COMMIT;

-- Ada wants three books, not two; Grace's mugs get a discount.
UPDATE order_lines SET qty = 3 WHERE order_id = 101 AND line_no = 1;
UPDATE order_lines SET unit_price = 7.50 WHERE order_id = 103 AND line_no = 2;

-- Alan cancels: his order is deleted with its lines.
BEGIN;
DELETE FROM order_lines WHERE order_id = 104;
DELETE FROM orders WHERE id = 104;
COMMIT;

-- Orders 101 and 103 are paid, then shipped.
UPDATE orders SET status = 'paid' WHERE id IN (101, 103);
UPDATE orders SET status = 'shipped' WHERE id = 101;
UPDATE orders SET status = 'shipped' WHERE id = 103;

-- Saving a shipped order again is not a second shipping: no second notification.
UPDATE orders SET status = 'shipped' WHERE id = 101;
