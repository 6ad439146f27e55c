import csv


def build_report(
    sales: dict[str, str], currency: str, api_key: str, notes: str | None = None
) -> dict[str, object]:
    if not api_key:
        raise ValueError("api_key is empty")
    with open(sales["path"], newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    total = sum(float(row["amount"]) for row in rows)
    with open("report.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["rows", "total", "currency", "notes"])
        writer.writerow([len(rows), f"{total:.2f}", currency, notes or ""])
    return {"report": {"path": "report.csv"}, "total": total}
