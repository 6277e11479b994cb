"""Service recovery (服务复原): plans, actions and follow-ups after a complaint, until the customer buys again."""
