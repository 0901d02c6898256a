"""The prompt catalogue (validation, shipped content) and the incremental audio build."""

from __future__ import annotations

import json
import shutil
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from agencies.model import load_agencies
from ivr import followup, prompts, say
from ivr.prompts import (
    Catalogue,
    agency_prompt,
    build,
    ensure_built,
    load_catalogue,
    missing,
)
from tongdai.errors import ConfigError, TongdaiError
from tongdai.settings import IvrSettings, Settings

SHIPPED = Path(prompts.__file__).with_name("prompts_vi.toml")

#: the prompts the menu, the dossier look-up and the message flow play
REQUIRED = {
    "chao_mung",
    "menu_chinh",
    "menu_thu_tuc",
    "menu_phan_anh",
    "lua_chon_khong_hop_le",
    "khong_nhan_duoc_phim",
    "chuyen_tong_dai_vien",
    "nhap_ma_ho_so",
    "ho_so_ma",
    "ho_so_khong_tim_thay",
    "ma_ho_so_khong_hop_le",
    "ma_ho_so_qua_dai",
    "trang_thai_received",
    "trang_thai_in_progress",
    "trang_thai_result_ready",
    "trang_thai_returned",
    "trang_thai_rejected",
    "ho_so_qua_han",
    "ngay_tiep_nhan",
    "ngay_hen_tra",
    "menu_sau_tra_cuu",
    "ghi_am_huong_dan",
    "ghi_am_cam_on",
    "ma_phieu_cua_ban",
    "ma_phieu_nhac_lai",
    "ngoai_gio",
    "tam_biet",
    "qua_tai",
    "loi_he_thong",
    "nhap_ma_phieu",
    "menu_sau_tra_cuu_phieu",
}

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="needs espeak-ng and sox (apt-get install espeak-ng sox)",
)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "prompts.toml"
    path.write_text(body, encoding="utf-8")
    return path


# --- catalogue validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ('[prompts]\nchao = "Xin chào\n', "line 2", "not valid TOML"),
        ('[other]\nchao = "Xin chào"\n', "other", "unknown key"),
        ('title = "x"\n', "title", "unknown key"),
        ("", "prompts", "missing [prompts] table"),
        ('prompts = "x"\n', "prompts", "must be a table"),
        ("[prompts]\n", "prompts", "empty"),
        ('[prompts]\nChao-Mung = "Xin chào"\n', "prompts.Chao-Mung", "lowercase ASCII"),
        ('[prompts]\n"chào" = "Xin chào"\n', "prompts.chào", "lowercase ASCII"),
        ('[prompts]\nchao = ""\n', "prompts.chao", "empty"),
        ('[prompts]\nchao = "   "\n', "prompts.chao", "empty"),
        ("[prompts]\nchao = 5\n", "prompts.chao", "must be a string"),
    ],
)
def test_given_bad_catalogue_when_loaded_then_config_error_names_file_and_field(
    tmp_path: Path, body: str, field: str, problem: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_catalogue(path)
    assert caught.value.file == str(path)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_given_no_file_when_loaded_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_catalogue(tmp_path / "absent.toml")


def test_given_good_catalogue_when_loaded_then_texts_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, '[prompts]\nchao = " Xin chào. "\nso_1 = "một"\n')
    catalogue = load_catalogue(path)
    assert dict(catalogue) == {"chao": "Xin chào.", "so_1": "một"}
    assert catalogue.source == str(path)
    assert missing(catalogue, ["so_1", "so_2", "chao", "so_2", "a"]) == ["a", "so_2"]


# --- the shipped catalogue --------------------------------------------------------------------


def test_shipped_catalogue_has_every_required_and_word_prompt() -> None:
    catalogue = load_catalogue(SHIPPED)
    assert missing(catalogue, REQUIRED) == []
    assert missing(catalogue, say.WORD_PROMPTS) == []
    assert missing(catalogue, followup.PROMPTS) == []  # what the key-7 look-up can say
    assert "beep" not in catalogue  # Asterisk's Record plays its own beep
    assert catalogue["lua_chon_khong_hop_le"] == "Lựa chọn không hợp lệ."
    assert catalogue["ho_so_ma"] == "Hồ sơ mã số"
    assert catalogue["ma_phieu_cua_ban"] == "Mã phiếu tiếp nhận của quý vị là"


def test_shipped_main_menu_offers_each_key() -> None:
    menu = load_catalogue(SHIPPED)["menu_chinh"]
    for key in "123456790":
        assert f"phím {key}." in menu, key


# --- the build --------------------------------------------------------------------------------


def assert_telephone_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 8000
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        assert w.getnframes() > 8000 // 10  # at least a tenth of a second of speech


@needs_tools
def test_given_two_prompts_when_built_then_telephone_wavs_and_rebuilds_only_changes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "vi"
    first = Catalogue({"chao": "Xin chào quý vị.", "so_1": "một"})

    report = build(first, out, progress=False)
    assert sorted(report.built) == ["chao", "so_1"] and report.skipped == ()
    for name in ("chao", "so_1"):
        assert_telephone_wav(out / f"{name}.wav")
    assert sorted(p.name for p in out.iterdir()) == ["chao.wav", "manifest.json", "so_1.wav"]

    again = build(first, out, progress=False)
    assert again.built == () and sorted(again.skipped) == ["chao", "so_1"]

    changed = Catalogue({"chao": "Xin chào ông bà.", "so_1": "một"})
    before = (out / "so_1.wav").stat().st_mtime_ns
    third = build(changed, out, progress=False)
    assert third.built == ("chao",) and third.skipped == ("so_1",)
    assert (out / "so_1.wav").stat().st_mtime_ns == before

    forced = build(changed, out, force=True, progress=False)
    assert sorted(forced.built) == ["chao", "so_1"]


@needs_tools
def test_given_deleted_wav_or_lost_manifest_when_built_then_rebuilt(tmp_path: Path) -> None:
    catalogue = Catalogue({"chao": "Xin chào.", "so_2": "hai"})
    build(catalogue, tmp_path, progress=False)
    (tmp_path / "chao.wav").unlink()
    assert build(catalogue, tmp_path, progress=False).built == ("chao",)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    assert sorted(build(catalogue, tmp_path, progress=False).built) == ["chao", "so_2"]
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(manifest["prompts"]) == ["chao", "so_2"]


@needs_tools
def test_given_text_starting_with_dash_when_built_then_spoken_not_parsed_as_option(
    tmp_path: Path,
) -> None:
    build(Catalogue({"gach_dau": "-h gạch"}), tmp_path, progress=False)
    assert_telephone_wav(tmp_path / "gach_dau.wav")


@needs_tools
def test_given_unknown_voice_when_built_then_error_and_nothing_recorded(tmp_path: Path) -> None:
    with pytest.raises(TongdaiError, match="espeak-ng exited"):
        build(Catalogue({"chao": "Xin chào."}), tmp_path, voice="nonexistent", progress=False)
    assert not (tmp_path / "chao.wav").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp files left
    assert json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))["prompts"] == {}


def test_given_no_espeak_when_built_then_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(TongdaiError, match="apt-get install espeak-ng sox"):
        build(Catalogue({"chao": "Xin chào."}), tmp_path / "out", progress=False)


@needs_tools
def test_given_settings_when_ensure_built_then_catalogue_built_into_sounds_dir(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "[prompts]\n" + "".join(f'{n} = "{n}"\n' for n in say.WORD_PROMPTS))
    sounds = tmp_path / "sounds"
    settings = replace(
        Settings(), ivr=replace(IvrSettings(), prompts=str(path), sounds_dir=str(sounds))
    )
    report = ensure_built(settings)
    assert sorted(report.built) == sorted(say.WORD_PROMPTS)
    assert report.out_dir == sounds
    assert ensure_built(settings).built == ()
    # the agencies' names, for the key-7 follow-up, in a folder of their own
    for agency in load_agencies():
        assert (sounds / agency_prompt(agency.id)).with_suffix(".wav").stat().st_size > 1000


def test_given_catalogue_without_word_prompts_when_ensure_built_then_config_error(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '[prompts]\nchao = "Xin chào."\n')
    settings = replace(Settings(), ivr=replace(IvrSettings(), prompts=str(path)))
    with pytest.raises(ConfigError, match="so_0") as caught:
        ensure_built(settings)
    assert caught.value.file == str(path) and caught.value.field == "prompts"
