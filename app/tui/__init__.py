"""The Textual app. Widgets render and post messages; screens call the companion."""
