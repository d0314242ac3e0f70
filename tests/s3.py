"""The S3-compatible server the tests use: the bench's (moto's standalone server over HTTP)."""

from bench.s3 import S3Server

__all__ = ["S3Server"]
