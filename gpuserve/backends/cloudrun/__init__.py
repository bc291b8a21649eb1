"""The Google Cloud Run backend: endpoints as Cloud Run services with a GPU that scale to zero."""
