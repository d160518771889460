"""Context-agnostic messaging core: messages, command bus, unit of work, outbox relay, consumers."""
