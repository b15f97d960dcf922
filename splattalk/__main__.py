from splattalk.cli import main

main()
