from tests.support.seaweed import s3_bucket, seaweedfs  # noqa: F401  (fixtures for these tests)
