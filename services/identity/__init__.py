"""Identity service (هویت): citizens and agencies, authentication, tokens, agency keys."""
