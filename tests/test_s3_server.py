"""The test S3 server answers as S3 does: buckets, objects, presigned POST policies."""

from __future__ import annotations

import requests

from s3_server import S3Server


def test_a_bucket_holds_objects(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="a/b", Body=b"hello")

    assert client.get_object(Bucket=bucket, Key="a/b")["Body"].read() == b"hello"
    assert s3_server.settings_env(bucket)["TENDER_S3_BUCKET"] == bucket


def test_a_presigned_post_enforces_its_size_limit(s3_server: S3Server) -> None:
    bucket = s3_server.create_bucket()
    post = s3_server.client().generate_presigned_post(
        bucket, "k", Conditions=[["content-length-range", 0, 10]], ExpiresIn=60
    )

    fits = requests.post(post["url"], data=post["fields"], files={"file": b"0123"}, timeout=30)
    too_big = requests.post(post["url"], data=post["fields"], files={"file": b"x" * 11}, timeout=30)

    assert fits.status_code == 204, fits.text
    assert too_big.status_code == 400
    assert "<Code>EntityTooLarge</Code>" in too_big.text
