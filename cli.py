def main(argv=None):
    print("cli")
