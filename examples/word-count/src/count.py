import collections
import re


def count_words(document: dict[str, str], lowercase: bool, top: float = 10) -> dict[str, object]:
    with open(document["path"], encoding="utf-8") as file:
        text = file.read()
    words = re.findall(r"[\w']+", text.lower() if lowercase else text)
    counts = collections.Counter(words).most_common(int(top))
    with open("histogram.txt", "w", encoding="utf-8") as histogram:
        histogram.writelines(f"{word:>12} {'#' * n}\n" for word, n in counts)
    return {"counts": dict(counts), "total": len(words), "histogram": {"path": "histogram.txt"}}
