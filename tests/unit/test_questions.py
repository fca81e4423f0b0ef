"""Questions to gateways: delivered once, answered only by the gateway asked, expired when unanswered."""

from cloudgw.controller import questions as q


def test_a_question_reaches_only_its_gateway_once_and_only_it_may_answer(monkeypatch):
    woken = []
    registry = q.Questions(wake=lambda: woken.append(1))
    asked = registry.ask("left-gw", {"target": "10.0.0.1"})
    assert woken == [1] and registry.pending("left-gw") and not registry.pending("right-gw")
    assert registry.take("right-gw") == []
    assert [x.id for x in registry.take("left-gw")] == [asked.id] and registry.take("left-gw") == []
    assert not registry.answer("right-gw", asked.id, {"proxy_arp": True})  # not its question
    assert not asked.done.is_set()
    assert registry.answer("left-gw", asked.id, {"proxy_arp": True})
    assert asked.done.is_set() and asked.answer == {"proxy_arp": True}
    assert not registry.answer("left-gw", asked.id, {})  # answered once


def test_unanswered_questions_expire(monkeypatch):
    registry = q.Questions()
    asked = registry.ask("left-gw", {})
    clock = asked.created + q.EXPIRE_S + 1
    monkeypatch.setattr(q.time, "monotonic", lambda: clock)
    assert registry.take("left-gw") == [] and asked.done.is_set() and asked.answer is None
