"""The CBT conversation: sits between the app and the engine, the store and safety."""
