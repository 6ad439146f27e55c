import re


def parse(text: str, scale: float = 1) -> dict[str, object]:
    return {"numbers": [float(n) * scale for n in re.findall(r"-?\d+(?:\.\d+)?", text)]}


def summarise(numbers: list[float]) -> dict[str, object]:
    count = len(numbers)
    total = sum(numbers)
    return {"stats": {"count": count, "total": total, "mean": total / count if count else None}}


def write_report(title: str, numbers: list[float], stats: dict[str, object]) -> dict[str, object]:
    path = "report.md"
    with open(path, "w", encoding="utf-8") as report:
        report.write(f"# {title}\n\n")
        report.write("".join(f"- {n:g}\n" for n in numbers))
        report.write(f"\n{stats['count']} numbers, total {stats['total']:g}\n")
    return {"report": {"path": path}}
