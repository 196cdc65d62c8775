"""Operations: health, metrics, OpenAPI and docs, the operator dashboard page."""
