-- Features computed for an operation; they go when the operation goes.
CREATE TABLE features_log (
    id BIGSERIAL PRIMARY KEY,
    operation_id BIGINT NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
