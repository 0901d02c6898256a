"""The plain dialplan IVR follows the menu: the committed file is what the generator makes of
the shipped menu, key 8 leads through its topics to the incidents queue, and the procedure
look-up (which needs the engine's catalogue) hands the caller to its agents."""

from __future__ import annotations

import re

from ivr.dialplan_export import GENERATED, HANDOVER, context, export
from ivr.menu import load_menu
from tongdai.settings import PROJECT_HOME

MENU = load_menu(PROJECT_HOME / "ivr/menu_1022.toml")


def _context(text: str, name: str) -> list[str]:
    m = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", text, re.S | re.M)
    assert m is not None, f"no [{name}]"
    return m.group(1).splitlines()


def test_the_committed_file_is_the_generated_one() -> None:
    assert (PROJECT_HOME / GENERATED).read_text(encoding="utf-8") == export(MENU)


def test_key_8_and_its_topics_reach_the_incidents_queue() -> None:
    text = export(MENU)
    main = _context(text, context("main"))
    assert any(line.startswith("exten => 8,1,Set(PLAIN_BACK_su_co=") for line in main)
    su_co = _context(text, context("su_co"))
    assert any("Background(" in line and "/menu_su_co)" in line for line in su_co)
    for topic in ("q_su_co_ha_tang", "q_su_co_kinh_te_xa_hoi"):
        assert any(f"Goto({context(topic)},s,1)" in line for line in su_co), topic
        queue = _context(text, context(topic))
        assert f" same => n,Goto({HANDOVER},su_co,1)" in queue


def test_the_procedure_look_up_hands_the_caller_to_the_fees_agents() -> None:
    text = export(MENU)
    assert any(
        line.startswith("exten => 5,1,Goto(plain-ivr-tra_cuu_thu_tuc,s,1)")
        for line in _context(text, context("thu_tuc"))
    )
    look = _context(text, context("tra_cuu_thu_tuc"))
    assert f"Goto({context('q_thu_tuc_thoi_han_le_phi')},s,1)" in "\n".join(look)
