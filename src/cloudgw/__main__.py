from cloudgw.cli.main import main

main()
