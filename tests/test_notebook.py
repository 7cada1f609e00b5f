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
    assert re.match(r"full mode: ran in 1\.5 min on .+ \(family .+; oneDNN .+; .+ OpenMP threads on \d+ CPUs; "
                    r"load average [\d.]+\)", line), line


def test_where_names_the_generation_and_says_when_the_isa_was_only_guessed():
    info = {"model": "AMD EPYC", "family": "25", "model_number": "1", "isa": "avx2", "isa_source": "cpuinfo",
            "threads": 0, "cores": 2}
    line = notebook.where(info, load=3.0)
    assert "family 25 model 1" in line and "unprobed, CPU flags allow avx2" in line
    assert "unset (all) OpenMP threads" in line and line.endswith("load average 3.0)")
