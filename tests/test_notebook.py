"""The chapters' opening and closing helpers."""
import re
import time

from gluon_resnet import notebook


def test_cpu_model_reads_the_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n")
    assert notebook.cpu_model(info) == "AMD EPYC 7B13"
    assert notebook.cpu_model(tmp_path / "missing")  # falls back to platform, never raises


def test_finish_prints_the_line_the_chapter_tests_look_for(capsys):
    notebook.finish(time.perf_counter() - 90, False)
    line = capsys.readouterr().out
    assert re.match(r"full mode: ran in 1\.5 min on .+ \(\d+ CPUs, load average [\d.]+, OMP_NUM_THREADS=", line)
