-- The buy path's stock take (apps/catalog/services.py: stock_take), on a table of the same
-- shape created by bench/run.py in the bench database: one hot row, conditional UPDATE.
UPDATE bench_hot_row SET available = available - 1, version = version + 1, updated_at = CURRENT_TIMESTAMP WHERE id = 1 AND available >= 1 RETURNING available, version;
