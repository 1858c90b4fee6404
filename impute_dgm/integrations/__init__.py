"""Optional integrations (MLflow); each imports its third-party package lazily."""
