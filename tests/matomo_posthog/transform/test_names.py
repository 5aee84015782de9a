import pytest

from matomo_posthog.transform import Mapping, SiteContext, transform_visit
from matomo_posthog.transform.names import ACTION_TYPES, MAX_EVENT_NAME_LENGTH, custom_event_name, type_key

SITE = SiteContext(site_id=1, timezone="UTC", currency="EUR")


def one_action(action, mapping=Mapping()):
    visit = {"idVisit": 1, "firstActionTimestamp": 1700000000, "actionDetails": [action]}
    result = transform_visit(visit, SITE, mapping)
    main = [e for e in result.events if e["properties"].get("matomo_action_type") is not None
            and e["event"] not in ("$pageleave", "Product Viewed", "Product List Viewed")]
    return result, main


@pytest.mark.parametrize(
    "action, name",
    [
        ({"type": "action", "url": "https://example.org/"}, "$pageview"),
        ({"type": "event", "eventCategory": "Video", "eventAction": "play"}, "Video: play"),
        ({"type": "search", "siteSearchKeyword": "shoes"}, "Site Search"),
        ({"type": "download", "url": "https://example.org/a.pdf"}, "Download"),
        ({"type": "outlink", "url": "https://elsewhere.org/"}, "Outlink Clicked"),
        ({"type": 13, "contentName": "Ad", "contentInteraction": None}, "Content Impression"),
        ({"type": "13", "contentName": "Ad", "contentInteraction": "click"}, "Content Interaction"),
        ({"type": "ecommerceOrder", "orderId": "A1", "revenue": 5}, "Order Completed"),
        ({"type": "ecommerceAbandonedCart", "revenue": 5}, "Cart Abandoned"),
        ({"type": "formSubmit", "formName": "contact"}, "formSubmit"),
    ],
)
def test_each_action_type_has_its_event_name(action, name):
    result, events = one_action(action)
    assert [e["event"] for e in events] == [name]
    assert result.error is None


def test_goals_are_skipped_unless_asked_for():
    goal = {"type": "goal", "goalId": "2", "goalName": None, "revenue": "10.5"}
    result, events = one_action(goal)
    assert events == [] and result.skipped == {"goal": 1}

    result, events = one_action(goal, Mapping(emit_goals=True))
    assert [e["event"] for e in events] == ["Goal Converted"]
    properties = events[0]["properties"]
    assert (properties["goal_id"], properties["revenue"], properties["currency"]) == (2, 10.5, "EUR")
    assert "goal_name" not in properties  # a deleted goal has no name


def test_event_names_can_be_overridden_per_kind():
    mapping = Mapping(event_names={"download": "File Downloaded", "content_interaction": "Ad Clicked",
                                   "pageleave": "Page Left", "formSubmit": "Form Submitted"})
    assert one_action({"type": "download", "url": "https://example.org/a.pdf"}, mapping)[1][0]["event"] == (
        "File Downloaded"
    )
    assert one_action({"type": 13, "contentInteraction": "click"}, mapping)[1][0]["event"] == "Ad Clicked"
    assert one_action({"type": "formSubmit"}, mapping)[1][0]["event"] == "Form Submitted"
    result, _ = one_action({"type": "action", "url": "https://example.org/", "timeSpent": 3}, mapping)
    assert [e["event"] for e in result.events] == ["$pageview", "Page Left"]


def test_unknown_types_pass_their_fields_through_without_hiding_mapped_ones():
    _, events = one_action({
        "type": "media", "url": "https://example.org/v", "mediaTitle": "Intro", "watched": 12.5,
        "$session_id": "not this", "icon": "x.png", "spans": [1, {"a": None}],
    })
    properties = events[0]["properties"]
    assert events[0]["event"] == "media"
    assert properties["mediaTitle"] == "Intro" and properties["watched"] == 12.5
    assert properties["spans"] == [1, {"a": None}]
    assert properties["$session_id"] != "not this"
    assert properties["$current_url"] == "https://example.org/v"
    assert "icon" not in properties


def test_event_names_from_the_template():
    mapping = Mapping(event_name_template="{category} - {action} - {name}")
    full = {"eventCategory": "Music", "eventAction": "play", "eventName": "La fiancée de l'eau"}
    assert custom_event_name(full, mapping, "Matomo Event") == "Music - play - La fiancée de l'eau"
    # A value the action lacks leaves no dangling separator.
    assert custom_event_name({"eventCategory": "Music", "eventAction": "play"}, mapping, "E") == "Music - play"
    assert custom_event_name({}, mapping, "Matomo Event") == "Matomo Event"
    # Text of its own that ends like a separator is kept when nothing is missing.
    arrows = {"eventCategory": "a <---", "eventAction": "b <---", "eventName": "c <---"}
    assert custom_event_name(arrows, mapping, "E") == "a <--- - b <--- - c <---"


def test_event_names_are_cut_to_what_posthog_keeps_and_properties_keep_the_full_text():
    category = "x" * 300
    _, events = one_action({"type": "event", "eventCategory": category, "eventAction": "y"})
    assert events[0]["event"] == category[:MAX_EVENT_NAME_LENGTH]
    assert events[0]["properties"]["event_category"] == category


@pytest.mark.parametrize("value, key", [(13, "13"), ("13", "13"), (13.0, "13"), (" event ", "event"),
                                        (None, None), ("", None), (True, None), ([], None), (1.5, None)])
def test_type_keys(value, key):
    assert type_key(value) == key


def test_every_known_type_has_a_kind_and_a_name():
    for key, row in ACTION_TYPES.items():
        assert row.kind and row.event, key
