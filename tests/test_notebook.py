"""The chapters' opening and closing helpers."""
import os
import re
import time

from gluon_resnet import notebook, runtime

# A CPU as cpu_info describes it; finish must print this one, not read the machine again on its own.
ZEN4 = {"model": "AMD EPYC", "generation": "Zen 4", "family": "25", "model_number": "17", "cores": 2,
        "threads": 1, "isa": "avx512_core_bf16", "isa_source": "onednn"}


def test_finish_names_the_cpu_its_generation_threads_isa_and_load(capsys, monkeypatch):
    monkeypatch.setattr(runtime, "_CPU", dict(ZEN4))
    monkeypatch.setattr(os, "getloadavg", lambda: (3.25, 1.0, 1.0))
    notebook.finish(time.perf_counter() - 90, False)
    assert capsys.readouterr().out == ("full mode: ran in 1.5 min on AMD EPYC (Zen 4, family 25 model 17; "
                                       "1 thread on 2 cores, avx512_core_bf16), load average 3.2\n")
    notebook.finish(time.perf_counter(), True)
    assert capsys.readouterr().out.startswith("quick mode: ran in 0.0 min on AMD EPYC (Zen 4,")


def test_finish_on_this_machine_matches_the_chapter_tests_pattern(capsys):
    notebook.finish(time.perf_counter() - 90, False)
    line = capsys.readouterr().out
    # the pattern tests/test_chapters.py applies to each committed notebook's last cell
    assert re.search(r"min\b.* on .+ \((.+; )?(\d+ threads? on )?\d+ (CPUs|cores)", line), line
    assert f", {runtime.cpu_info()['isa']}), load average " in line
