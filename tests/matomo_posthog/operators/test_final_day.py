from datetime import date, timedelta

import pytest
from airflow.sdk.exceptions import TaskDeferred

from matomo_posthog.operators.final_day import FinalDayOperator
from matomo_posthog.timezones import parse_timezone
from matomo_posthog.windows import final_at


def test_old_day_passes_without_waiting():
    operator = FinalDayOperator(task_id="wait", site_timezone="Europe/Berlin", day="2024-03-31")
    assert operator.execute({}) == "2024-03-31"


def test_recent_day_defers_until_48_hours_after_its_local_end():
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    operator = FinalDayOperator(task_id="wait", site_timezone="UTC+5.5", day=yesterday)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    moment = deferred.value.trigger.serialize()[1]["moment"]
    assert moment == final_at(date.fromisoformat(yesterday), parse_timezone("UTC+5.5"))
    assert deferred.value.method_name == "execute_complete"
    assert operator.execute_complete({}, event=None) == yesterday
