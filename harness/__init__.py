"""rollout-harness: measure traffic lost while a Kubernetes Deployment rolls."""
