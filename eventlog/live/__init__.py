"""What follows the log as it grows: subscriptions, persistent consumers, async projectors."""
