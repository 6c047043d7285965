"""The road out: durable upload queue and delivery targets."""
