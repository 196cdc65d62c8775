"""The HTTP edge shared by every surface: middlewares, error bodies, validation, CRUD, OpenAPI."""
