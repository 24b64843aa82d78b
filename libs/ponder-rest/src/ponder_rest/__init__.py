"""REST/JSON facade of gRPC services, driven by their google.api.http annotations."""
