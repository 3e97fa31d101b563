"""The content store: message parts, artifacts and task metadata by reference, out of Temporal's payloads."""

from content.store import ContentMissingError, ContentStore, metadata_json, wire_json

__all__ = ["ContentMissingError", "ContentStore", "metadata_json", "wire_json"]
