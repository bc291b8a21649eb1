"""The Docker backend and the image builder that the cloud backends share."""
