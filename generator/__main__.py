from taichu_serve.cli import main

main()
