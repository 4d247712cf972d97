-- The reference application's themes: a name and a JSON configuration object.
CREATE TABLE themes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    config      jsonb       NOT NULL DEFAULT '{}'::jsonb
                            CHECK (jsonb_typeof(config) = 'object' AND pg_column_size(config) <= 16384),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
