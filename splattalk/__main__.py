from splattalk.viewer.cli import main

main()
