"""`just fuzz`: Schemathesis against a running `shopstream serve`, the OpenAPI document as the contract."""
