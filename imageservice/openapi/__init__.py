"""The OpenAPI 3.1 document of the service (``/openapi.json``) and its readable page (``/api``)."""
