"""Audience sentiment through the real app: comments sent over REST are scored by the
sentiment projection (VADER, in the background), and GraphQL answers a video's, its
creator's, hashtag's and sound's sentiment over event-time windows, the platform's
mood, rankings and the videos turning negative; the turn's alert is auto-flagged once."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.auth import HEADERS

from adapters.bootstrap import Container, bootstrap
from adapters.http.app import create_app
from adapters.settings import Settings
from e2e.test_intelligence_graphql import gql, wait_for

PRAISE = ("love this", "this is so good", "amazing work", "thank you for this", "beautiful shot")
ANGER = ("this is so boring", "terrible advice", "what a waste of time", "the worst",
         "this is stupid", "awful, just awful", "so disappointed in you", "this is offensive",
         "painful to watch", "ugly edit")  # fmt: skip
SENTIMENT = "comments scored positive negative neutral mean positiveShare negativeShare"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}", alert_actions_poll_seconds=0.1
    )
    container = bootstrap(settings)
    with TestClient(create_app(container), headers=HEADERS) as client:
        yield client, container
    container.close()


def comment(client: TestClient, video: str, texts: tuple[str, ...], start: datetime,
            every: timedelta) -> int:  # fmt: skip
    items = [
        {
            "type": "comment",
            "video_id": video,
            "viewer_id": str(uuid.uuid4()),
            "text": text,
            "occurred_at": (start + every * i).isoformat(),
        }
        for i, text in enumerate(texts)
    ]
    r = client.post("/v1/engagement/batch", json={"items": items})
    assert r.status_code == 200, r.text
    position: int = r.json()["position"]
    return position


def video_of(client: TestClient, at: datetime) -> tuple[str, str]:
    r = client.post("/v1/creators", json={"handle": f"s{uuid.uuid4().hex[:8]}",
                                          "display_name": "S", "region": "US"})  # fmt: skip
    creator = r.json()["id"]
    body = {"creator_id": creator, "caption": "c", "hashtags": ["#mood"], "sound_id": "snd-e2e",
            "duration_seconds": 30, "occurred_at": at.isoformat()}  # fmt: skip
    r = client.post("/v1/videos", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"], creator


def test_sentiment_fields_answer_windows_rankings_and_the_turn(served):
    client, _ = served
    now = datetime.now(UTC).replace(microsecond=0)
    video, creator = video_of(client, now - timedelta(hours=12))
    comment(client, video, PRAISE * 2, now - timedelta(hours=11), timedelta(minutes=30))
    token = comment(client, video, (*ANGER, "no me gustó nada"), now - timedelta(minutes=45),
                    timedelta(minutes=4))  # fmt: skip

    query = f"""query($id: UUID!, $creator: UUID!) {{
      video(id: $id) {{ day: sentiment {{ {SENTIMENT} }}
        hour: sentiment(window: HOUR) {{ {SENTIMENT} }}
        sentimentStatus {{ status turns recentComments baseline recentMean }}
        creator {{ sentiment {{ comments }} }} }}
      creator(id: $creator) {{ sentiment(window: HOUR) {{ comments negative }} }}
      hashtag: sentiment(kind: HASHTAG, key: "mood") {{ kind key comments scored since until }}
      sound: sentiment(kind: SOUND, key: "snd-e2e", window: HOUR) {{ comments }}
      platformSentiment {{ comments scored }}
      sentimentRanking(kind: VIDEO, order: MOST_POSITIVE) {{ key mean }}
      turningNegativeVideos {{ videoId status video {{ caption }} }} }}"""
    data = wait_for(
        lambda: (
            (d := gql(client, query, token, id=video, creator=creator)["data"])["video"]
            and d["video"]["sentimentStatus"]
            and d["video"]["day"]["comments"] == 21
            and d
        ),
        "the sentiment projection",
    )
    day, hour = data["video"]["day"], data["video"]["hour"]
    assert (day["comments"], day["scored"], day["positive"], day["negative"]) == (21, 20, 10, 10)
    assert (hour["comments"], hour["scored"], hour["negative"]) == (
        11,
        10,
        10,
    )  # the last 45-60 min
    assert hour["mean"] < -0.3 and day["positiveShare"] == pytest.approx(0.5)
    status = data["video"]["sentimentStatus"]
    assert status["status"] == "turning_negative" and status["turns"] == 1
    assert status["baseline"] > 0.5 > -0.5 > status["recentMean"]
    assert data["video"]["creator"]["sentiment"]["comments"] == 21
    assert data["creator"]["sentiment"] == {"comments": 11, "negative": 10}
    assert data["hashtag"]["comments"] == 21 and data["hashtag"]["kind"] == "hashtag"
    assert data["hashtag"]["since"] < data["hashtag"]["until"]
    assert data["sound"]["comments"] == 11
    assert data["platformSentiment"] == {"comments": 21, "scored": 20}
    assert [r["key"] for r in data["sentimentRanking"]] == [video]
    assert data["turningNegativeVideos"] == [
        {"videoId": video, "status": "turning_negative", "video": {"caption": "c"}}
    ]

    alert = (
        '{ alerts(rule: "sentiment_turning_negative") '
        "{ edges { node { subjectId actionStatus } } } }"
    )
    edges = wait_for(
        lambda: [
            e
            for e in gql(client, alert)["data"]["alerts"]["edges"]
            if e["node"]["actionStatus"] == "done"
        ],
        "the alert worker",
    )
    assert [e["node"]["subjectId"] for e in edges] == [video]
    case = gql(client, "query($id: UUID!) { video(id: $id) { moderationCase { maxFlagScore } } }",
               id=video)["data"]["video"]["moderationCase"]  # fmt: skip
    assert case is not None and case["maxFlagScore"] > 0


def test_bad_sentiment_input_is_a_clear_error(served):
    client, _ = served
    answer = gql(client, "{ sentimentRanking(kind: HASHTAG, first: 0) { key } }")
    assert "`first` must be between" in answer["errors"][0]["message"]
    answer = gql(client, '{ sentiment(kind: MOOD, key: "x") { comments } }')
    assert answer["errors"] and "MOOD" in answer["errors"][0]["message"]
    empty = gql(client, '{ sentiment(kind: HASHTAG, key: "none") { comments mean since } }')
    assert empty["data"]["sentiment"] == {"comments": 0, "mean": None, "since": None}
