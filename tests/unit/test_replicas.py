from sqlalchemy import create_engine

from cloudgw.controller.replicas import listen_url, newer


def test_a_notification_is_news_only_beyond_the_known_revision():
    assert newer("42", 41) and not newer("41", 41) and not newer("7", 41)
    # someone else's NOTIFY on the channel, or a number no revision reaches: the follower reads
    assert newer("", 41) and newer("x", 41) and newer("-1", 41) and newer("9" * 30, 41)


def test_only_postgresql_listens_and_its_url_keeps_the_connection_options():
    assert listen_url(create_engine("sqlite:///:memory:")) is None
    url = listen_url(create_engine("postgresql+psycopg://cg:secret@db.example:5433/cloudgw?sslmode=require"))
    assert url == "postgresql://cg:secret@db.example:5433/cloudgw?sslmode=require"
