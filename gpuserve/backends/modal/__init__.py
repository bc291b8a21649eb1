"""The Modal backend: endpoints as scale-to-zero Modal apps, built with the real modal SDK."""
