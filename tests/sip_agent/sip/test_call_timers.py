"""The call's timeouts, as a pure function of time."""

from sip_agent.sip.call_timers import CallTimers, Timeout

T = CallTimers(started=100.0, answer_timeout_s=30.0, max_duration_s=10.0, teardown_timeout_s=3.0)


def test_outgoing_call_not_answered_in_time_is_given_up() -> None:
    assert T.due(129.9, outgoing=True, confirmed_at=None, hangup_at=None) is Timeout.NONE
    assert T.due(130.1, outgoing=True, confirmed_at=None, hangup_at=None) is Timeout.NOT_ANSWERED


def test_incoming_call_has_no_answer_timeout() -> None:
    assert T.due(1000.0, outgoing=False, confirmed_at=None, hangup_at=None) is Timeout.NONE


def test_max_duration_counts_from_confirmation() -> None:
    assert T.due(119.9, outgoing=True, confirmed_at=110.0, hangup_at=None) is Timeout.NONE
    assert T.due(120.0, outgoing=True, confirmed_at=110.0, hangup_at=None) is Timeout.MAX_DURATION


def test_teardown_overrides_everything_else() -> None:
    assert T.due(500.0, outgoing=True, confirmed_at=110.0, hangup_at=498.0) is Timeout.NONE
    assert T.due(501.5, outgoing=True, confirmed_at=110.0, hangup_at=498.0) is Timeout.TEARDOWN_OVERDUE
    assert T.due(131.0, outgoing=True, confirmed_at=None, hangup_at=130.5) is Timeout.NONE


def test_no_limits_never_time_out() -> None:
    free = CallTimers(started=0.0, answer_timeout_s=None, max_duration_s=None, teardown_timeout_s=3.0)
    assert free.due(1e9, outgoing=True, confirmed_at=None, hangup_at=None) is Timeout.NONE
    assert free.due(1e9, outgoing=True, confirmed_at=5.0, hangup_at=None) is Timeout.NONE
