"""The Chinese user guide (docs/使用说明.md) as one printable, self-contained HTML page.

    python -m dev.guide docs/使用说明.md docs/使用说明.html     (make guide)

Markdown to HTML by Python-Markdown (installed with the project's dependencies), tables and
fenced code blocks; the style is in the page (A4, the reader's Chinese system fonts), no
script, nothing fetched. Print it from the browser.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

STYLE = """
body { max-width: 860px; margin: 0 auto; padding: 24px 28px; color: #222;
  font: 15px/1.75 "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Noto Sans CJK SC",
  "Source Han Sans SC", "WenQuanYi Micro Hei", SimSun, sans-serif; }
h1 { font-size: 26px; border-bottom: 3px solid #3a78c2; padding-bottom: 6px; }
h2 { font-size: 20px; margin-top: 34px; border-bottom: 1px solid #c8c8c8; padding-bottom: 3px; }
code { font-family: Consolas, "DejaVu Sans Mono", monospace; background: #f3f3f3;
  padding: 0 3px; border-radius: 3px; font-size: 13.5px; }
pre { background: #f6f8fa; border: 1px solid #dde; padding: 10px 12px; overflow-x: auto;
  line-height: 1.45; }
pre code { background: none; padding: 0; white-space: pre; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; }
th, td { border: 1px solid #bbb; padding: 5px 8px; vertical-align: top; text-align: left; }
th { background: #eef1f5; }
@page { size: A4; margin: 16mm 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 12.5px; }
  h2 { break-after: avoid; }
  pre, table, tr { break-inside: avoid; }
  h2:last-of-type { break-before: page; }  /* 乡镇填报说明 on a page of its own */
}
"""


def render(markdown_text: str) -> str:
    """The whole page for the guide's markdown."""
    import markdown

    body = markdown.markdown(
        markdown_text, extensions=["tables", "fenced_code", "sane_lists"], output_format="html"
    )
    first = next((ln for ln in markdown_text.splitlines() if ln.startswith("# ")), "# 使用说明")
    title = html.escape(first[2:].strip())
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n"
        "</html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args(argv)
    args.target.write_text(render(args.source.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"{args.target}: 打印版使用说明 the printable guide (open it in a browser and print)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
