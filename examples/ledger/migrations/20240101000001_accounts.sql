-- Accounts and their balances, in cents.
CREATE TABLE accounts (
    id BIGINT PRIMARY KEY,
    balance BIGINT NOT NULL DEFAULT 0
);

-- Every movement of money, for the audit.
CREATE TABLE movements (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
