"""The GraphQL read side (strawberry), mounted at /graphql beside the command routes."""
