"""kaito-gitops: workload specs, KAITO manifests and the Pulumi program for AKS."""
