"""The AWS SageMaker backend: endpoints as SageMaker real-time endpoints that scale to zero."""
