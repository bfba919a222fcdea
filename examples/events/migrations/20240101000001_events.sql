-- What happened, as consumers see it. New event types need a migration:
-- ALTER TYPE event_type ADD VALUE '...'.
CREATE TYPE event_type AS ENUM ('trading_signal', 'order_filled', 'risk_alert', 'system_error');

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    type event_type NOT NULL,
    source TEXT NOT NULL,
    payload JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX events_type ON events (type);
