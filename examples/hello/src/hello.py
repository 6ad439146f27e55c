def greet(who: str, excited: bool = False) -> dict[str, object]:
    greeting = f"Hello, {who}{'!' if excited else '.'}"
    print(greeting)
    return {"greeting": greeting, "letters": sum(c.isalpha() for c in greeting)}
